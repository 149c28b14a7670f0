"""Video: sources (:mod:`.sources`), files in and out with PyAV (:mod:`.media`: H.264 MP4 with the sound kept), one
frame through the network (:mod:`.frames`), flicker reduction (:mod:`.flicker`), the threaded capture → stages →
sink pipeline (:mod:`.pipeline`) and a file stylized into a file (:mod:`.render`)."""
