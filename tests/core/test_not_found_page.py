import pytest


@pytest.mark.django_db
def test_not_found_page_keeps_the_layout_and_a_way_home(client, settings, house_setup):
    settings.DEBUG = False
    client.force_login(house_setup.setter_member)
    response = client.get("/pieces/999999/")
    assert response.status_code == 404
    html = response.content.decode()
    assert "Back to your home page" in html and 'href="/"' in html
