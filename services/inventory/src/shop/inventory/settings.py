from shop.shared.settings import ServiceSettings


class InventorySettings(ServiceSettings):
    port: int = 9083


settings = InventorySettings()
