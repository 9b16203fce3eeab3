"""The trusted research environment: researchers' SQL is checked, run over a project's views,
and every output is checked for disclosure before release."""
