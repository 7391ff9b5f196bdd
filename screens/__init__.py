"""One module per screen; dialogs in screens/dialogs/."""
