"""File and image I/O with the safety checks: image decoding, paths kept inside their roots, restricted unpickling, hashing and atomic writes."""
