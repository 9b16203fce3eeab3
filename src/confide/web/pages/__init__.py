"""The HTML pages, one router per journey (patient, GP letter, public, demo)."""
