"""From decoded pixels to a full-size matte and its compositions."""
