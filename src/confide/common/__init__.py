"""Small domain primitives shared by every party (no party's secrets live here)."""
