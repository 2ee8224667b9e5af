"""The youth space of the Service national universel (SNU): cohorts, young people's accounts, guardians' consent."""
