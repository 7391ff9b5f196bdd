"""Translation catalogues for the user interface (`<lang>/LC_MESSAGES/recordkeeper.po` and its compiled `.mo`)."""
