"""`python -m inventory`: run the inventory service until SIGTERM/SIGINT."""

from inventory.bootstrap import bootstrap
from sagakit.runtime import main

if __name__ == "__main__":
    main(bootstrap)
