"""Air quality from AirKorea real-time JSON: Korean CAI, fine-dust alerts, optional US EPA AQI."""
