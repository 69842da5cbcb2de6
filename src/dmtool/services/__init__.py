"""Use cases: each one reads and writes the store and calls X through x/."""
