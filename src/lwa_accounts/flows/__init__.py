"""Use cases shared by the pages and the JSON API. Flows never commit: the edge does."""
