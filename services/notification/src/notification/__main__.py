"""`python -m notification`: run the notification service until SIGTERM/SIGINT."""

from notification.bootstrap import bootstrap
from sagakit.runtime import main

if __name__ == "__main__":
    main(bootstrap)
