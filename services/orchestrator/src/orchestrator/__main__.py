"""`python -m orchestrator`: run the orchestrator service until SIGTERM/SIGINT."""

from sagakit.runtime import main

from orchestrator.bootstrap import bootstrap

if __name__ == "__main__":
    main(bootstrap)
