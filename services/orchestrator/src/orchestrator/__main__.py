"""`python -m orchestrator`: run the orchestrator service until SIGTERM/SIGINT."""

from orchestrator.bootstrap import bootstrap
from sagakit.runtime import main

if __name__ == "__main__":
    main(bootstrap)
