"""greenless: real-time, trimap-free portrait matting (MODNet) for photos, folders, videos and webcams."""

from greenless.errors import GreenlessError
from greenless.matter import Matter

__all__ = ["Matter", "GreenlessError"]
__version__ = "0.1.0"
