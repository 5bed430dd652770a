import pytest


@pytest.fixture
def settings(make_settings, stripe_settings):
    return make_settings(low_stock_alert_email="florist@amourflorals.test", **stripe_settings)
