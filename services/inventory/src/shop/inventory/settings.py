from shop.shared.ownership import OperatorSettings
from shop.shared.settings import ServiceSettings


class InventorySettings(ServiceSettings, OperatorSettings):
    port: int = 9083


settings = InventorySettings()
