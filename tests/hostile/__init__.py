"""The hostile catalogue: correct engines that each do one hostile thing to the process
they run in; each has the verdict and outcomes certification must give it."""
