-- MLflow's backend store and our own database live side by side on the one PostgreSQL.
CREATE DATABASE mlflow OWNER lifecycle;
