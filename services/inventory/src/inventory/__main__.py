"""`python -m inventory`: run the inventory service until SIGTERM/SIGINT."""

from sagakit.runtime import main

from inventory.bootstrap import bootstrap

if __name__ == "__main__":
    main(bootstrap)
