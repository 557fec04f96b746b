"""Online RL (PPO, RLOO, GRPO): the reward contract the trainers take (`reward.py`)."""
