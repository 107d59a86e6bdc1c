"""`python -m pretix_secrets_import.gate_sync`, the documented name of the reference gate client (gate/client.py)."""
from pretix_secrets_import.gate.client import main

if __name__ == "__main__":
    main()
