"""`python -m payment`: run the payment service until SIGTERM/SIGINT."""

from sagakit.runtime import main

from payment.bootstrap import bootstrap

if __name__ == "__main__":
    main(bootstrap)
