"""An ExampleGen reading cats_vs_dogs through TFDS (or a two-class image folder)."""
