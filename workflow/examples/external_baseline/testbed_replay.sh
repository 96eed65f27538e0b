#!/bin/sh
# An external baseline for e3's fairness system that does not use e3 (workflow/rules/external.smk):
# it looks up the (scenario, seed) row of a measurements CSV and writes OUT/summary.json in the
# run-summary schema (e3/schemas/run_summary.schema.yaml). Any program that writes that file can
# take its place: another simulator, a container, a script that reads a real testbed's logs.
#   usage: testbed_replay.sh CSV SCENARIO SEED OUT
set -eu
csv=$1 scenario=$2 seed=$3 out=$4
mkdir -p "$out"
awk -F, -v sc="$scenario" -v seed="$seed" '
  /^#/ || $1 == "scenario" { next }
  $1 == sc && $2 == seed {
    found = 1
    served = $4; issued = $3
    min = $12; worst = $12
    for (i = 12; i <= 15; i++) { if ($i > worst) worst = $i; if ($i < min) min = $i }
    printf "{\"system\": \"fairness\", \"scenario\": \"%s\", \"policy\": \"testbed_replay\", \"controller\": \"none\",", sc
    printf " \"seed\": %d, \"config_hash\": \"external\", \"scenario_hash\": \"external\",", seed
    printf " \"versions\": {\"e3\": \"0.4.0\", \"testbed_replay\": \"1\"},"
    printf " \"external\": {\"command\": \"testbed_replay.sh\", \"source\": \"%s\"},", FILENAME
    printf " \"policy_summary\": {\"controller\": \"none\"},"
    printf " \"issued\": %d, \"served\": %d, \"timed_out\": %d, \"failed\": %d,", issued, served, $5, $6
    printf " \"mean_latency_s\": %s, \"p95_latency_s\": %s, \"mean_latency_served_s\": %s,", $7, $8, $7
    printf " \"p95_latency_served_s\": %s, \"jain_raw\": %s, \"jain_normalized\": %s, \"jain_inverse_latency\": %s,", $8, $9, $10, $9
    printf " \"success_ratio\": %.6f, \"min_model_success_ratio\": %.6f, \"censored_fraction\": %.6f,", served / issued, served / issued, $5 / issued
    printf " \"pod_activations\": %d, \"worst_model_latency_s\": %s,", $11, worst
    printf " \"per_model_mean_latency_s\": {\"gpt2\": %s, \"gpt2_large\": %s, \"blip\": %s, \"stable_diffusion\": %s},", $12, $13, $14, $15
    printf " \"per_epoch\": [{\"epoch\": 0, \"mean_latency_s\": %s, \"jain_normalized\": %s}]}\n", $7, $10
  }
  END { if (!found) { print "testbed_replay.sh: no row for scenario " sc " seed " seed " in " FILENAME > "/dev/stderr"; exit 1 } }
' "$csv" > "$out/summary.json.tmp"
mv "$out/summary.json.tmp" "$out/summary.json"
