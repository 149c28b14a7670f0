"""Video: sources (:mod:`.sources`), one frame through the network (:mod:`.frames`), flicker reduction
(:mod:`.flicker`), the threaded capture → stages → sink pipeline (:mod:`.pipeline`) and the MP4 recorder
(:mod:`.recorder`)."""
