from flowrun import create_app

app = create_app()

if __name__ == "__main__":  # development server; gunicorn -c gunicorn.conf.py app:app
    app.run(host=app.config["FLOWRUN_BIND"], port=app.config["PORT"], threaded=True)
