"""`python -m rlaif.cli`."""
from rlaif.cli import main

if __name__ == "__main__":
    main()
