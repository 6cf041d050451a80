from shop.fulfilment.settings import settings
from shop.fulfilment.workflow import fulfilment
from shop.shared.logs import setup_logging
from shop.shared.serve import run

setup_logging("fulfilment", settings.log_level)
run([fulfilment], settings)
