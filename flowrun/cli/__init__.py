"""The ``flowrun`` command line (``main``) and what it prints and writes."""
