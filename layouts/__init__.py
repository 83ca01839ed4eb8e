"""Pages: wall screens, the supervisor desk and the commander tablet."""
