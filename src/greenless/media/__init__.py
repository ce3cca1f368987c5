"""Files in and out, no model code: still images (``images``), videos and folders of frames with their audio
(``video``), labelled folders pairing images with their mattes (``labelled``), which files a run reads and
what its results are called (``naming``), folders watched for new photos (``watch``) and output permissions
(``files``). The webcam's camera is read by ``greenless webcam`` itself (``cli/webcam.py``, OpenCV)."""
