#!/usr/bin/env python3
"""Scrapes a Prometheus text endpoint and parses it with the reference parser (python3-prometheus-client):
prints every sample as JSON ({"name", "labels", "value"}), one array. Exits non-zero when the text does not parse."""
import json
import sys
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

with urllib.request.urlopen(sys.argv[1], timeout=10) as response:
    text = response.read().decode("utf-8")
samples = []
for family in text_string_to_metric_families(text):
    for sample in family.samples:
        samples.append({"name": sample.name, "type": family.type, "labels": sample.labels, "value": sample.value})
print(json.dumps(samples))
