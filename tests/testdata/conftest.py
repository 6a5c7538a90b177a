

# The cleanup's FK-graph DELETE statements nest one subquery per level of the ownership graph;
# with every domain merged, SQLite's parser overflows on the deepest chains (PostgreSQL runs them).
# Until the cleanup materialises ids level by level, these run on PostgreSQL only.
_SQLITE_DEEP_GRAPH = ("test_cleanup", "test_test_clocks")
_SQLITE_DEEP_GRAPH_TESTS = {"test_delete_and_bulk_delete_refuse_production_accounts",
                            "test_bulk_delete_is_all_or_nothing", "test_delete_removes_the_account_and_what_it_owns"}


def pytest_collection_modifyitems(config, items):
    import pytest as _pytest

    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1]
        if module.startswith(_SQLITE_DEEP_GRAPH) or item.originalname in _SQLITE_DEEP_GRAPH_TESTS:
            item.add_marker(_pytest.mark.postgres)
