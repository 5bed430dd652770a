import pytest


@pytest.fixture
def settings(make_settings, stripe_settings):
    return make_settings(**stripe_settings)
