"""social-core's Amazon backend, pointed at the emulator instead of api.amazon.com."""

from django.conf import settings
from social_core.backends.amazon import AmazonOAuth2


class EmulatedAmazonOAuth2(AmazonOAuth2):
    name = "amazon"
    ACCESS_TOKEN_URL = settings.EMULATOR_URL + "/auth/o2/token"

    def user_data(self, access_token, *args, **kwargs):  # type: ignore[no-untyped-def]
        response = self.get_json(
            settings.EMULATOR_URL + "/user/profile", params={"access_token": access_token}
        )
        if "Profile" in response:
            response = {
                "user_id": response["Profile"]["CustomerId"],
                "name": response["Profile"]["Name"],
                "email": response["Profile"]["PrimaryEmail"],
            }
        return response
