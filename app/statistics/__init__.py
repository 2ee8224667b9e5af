"""Public statistics (`/statistiques`): figures computed in SQL by a background job, served from Redis only."""
