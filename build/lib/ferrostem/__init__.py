"""ferrostem: ferroptosis and cancer stemness in public cancer expression cohorts."""

__version__ = "0.1.0"
