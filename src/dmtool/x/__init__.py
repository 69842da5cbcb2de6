"""The X boundary. Only modules in this package import tweepy, and only lazily."""
