import sys

from gradcert.cli import main

sys.exit(main())
