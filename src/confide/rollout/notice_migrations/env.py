from confide.common.migration_env import run

run()
