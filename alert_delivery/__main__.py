import sys

from alert_delivery.cli import main

sys.exit(main())
