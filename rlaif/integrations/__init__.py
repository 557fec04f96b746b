"""Adapters for trainers that load a reward function from a file or a module: OpenRLHF (`openrlhf_reward`, a
file that imports nothing of rlaif) and verl (`verl_reward`)."""
