"""The applications on top of the library: the webcam filter (:mod:`.webcam`, with :mod:`.virtualcam`) and the
Gradio demo page (:mod:`.demo`)."""
