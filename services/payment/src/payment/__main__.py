"""`python -m payment`: run the payment service until SIGTERM/SIGINT."""

from payment.bootstrap import bootstrap
from sagakit.runtime import main

if __name__ == "__main__":
    main(bootstrap)
