"""The `zoo` command line. Only this package talks to the terminal."""
