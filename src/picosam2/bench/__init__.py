"""Speed and size measurements (``picosam2 bench``); see benchmarks/ for the scripts and results."""
