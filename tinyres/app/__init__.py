"""The application layer, on top of everything: the command line (``cli``), its recipes,
the ``Trainer`` (``train``) and the graph viewer (``viz``)."""
