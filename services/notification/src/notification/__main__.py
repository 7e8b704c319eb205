"""`python -m notification`: run the notification service until SIGTERM/SIGINT."""

from sagakit.runtime import main

from notification.bootstrap import bootstrap

if __name__ == "__main__":
    main(bootstrap)
