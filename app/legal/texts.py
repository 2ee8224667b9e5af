"""Version 1 of each legal text, published by the release step on a database that has none (app/legal/release.py).

Written in the markup of app/legal/markup.py. The words in braces are replaced, when a page is shown, by the
settings (app/settings.py, LEGAL_*): whoever runs the platform names itself without publishing a new version.
"""

from __future__ import annotations

from app.legal.kinds import Kind
from app.settings import Settings

MENTIONS = """\
## Éditeur

Renfort est édité par : {editeur}, {adresse_editeur}.

Contact : [{contact}](mailto:{contact})

## Directeur ou directrice de la publication

{directeur}

## Hébergement

La plateforme est hébergée par : {hebergeur}, {adresse_hebergeur}.

## Logiciel libre

Le code de Renfort est publié sous licence libre : chacun peut le lire, le vérifier et le réutiliser.

## Liens vers d'autres sites

Les pages des missions peuvent renvoyer vers les sites des structures qui les proposent. L'éditeur n'est pas \
responsable du contenu de ces sites.

## Propriété intellectuelle

Sauf mention contraire, les textes de la plateforme peuvent être réutilisés librement en citant leur source. Les \
textes des missions et des structures appartiennent aux structures qui les ont rédigés.

## Pages associées

- [Déclaration d'accessibilité](/accessibilite)
- [Données personnelles](/donnees-personnelles)
- [Conditions d'utilisation et chartes](/conditions-utilisation)
"""

ACCESSIBILITY = """\
{editeur} s'engage à rendre ses services en ligne accessibles, conformément à l'article 47 de la loi n° 2005-102 \
du 11 février 2005. Cette déclaration d'accessibilité s'applique à la plateforme Renfort.

## État de conformité

Renfort est partiellement conforme au référentiel général d'amélioration de l'accessibilité (RGAA), version 4.1.

Aucun audit RGAA n'a encore été réalisé : le taux de conformité n'est donc pas connu. Les vérifications \
automatiques décrites ci-dessous ne remplacent pas un audit, qui examine les 106 critères du référentiel, \
notamment ceux qu'aucun outil ne peut juger (pertinence des textes de remplacement, ordre de lecture, clarté des \
messages).

## Ce qui est vérifié à chaque évolution

- Un contrôle automatique (axe-core) de chaque page des parcours principaux, sur un écran large (1280 pixels) et \
sur un écran de téléphone (390 pixels) : aucune erreur grave ou critique n'est acceptée.
- Aucune page de ces parcours ne déborde horizontalement sur un écran de 390 pixels.
- L'inscription comme bénévole et la candidature à une mission se font entièrement au clavier, sans souris.
- Chaque champ de formulaire a une étiquette ; les erreurs sont annoncées en tête de formulaire et à côté du \
champ concerné.
- Les pages fonctionnent sans JavaScript.

## Contenus non accessibles

Faute d'audit, la liste des non-conformités n'est pas établie. Les cartes des urgences sont doublées d'une liste \
textuelle des lieux ; si un contenu vous reste inaccessible, signalez-le (voir ci-dessous).

## Établissement de cette déclaration

Cette déclaration a été établie à la mise en service de la plateforme. Technologies utilisées : HTML, CSS ; \
JavaScript seulement en complément. Environnements de test : navigateur Chromium piloté automatiquement, sur \
ordinateur et en taille d'écran de téléphone.

## Signaler un défaut d'accessibilité

Si vous ne pouvez pas accéder à un contenu ou à un service, écrivez-nous à [{contact}](mailto:{contact}) : \
décrivez la page et la difficulté rencontrée. Nous vous répondrons et vous proposerons une autre façon d'obtenir \
l'information ou d'effectuer la démarche.

## Voies de recours

Si vous nous avez signalé un défaut d'accessibilité qui vous empêche d'accéder à un contenu ou à un service et \
que vous n'avez pas obtenu de réponse satisfaisante, vous pouvez :

- écrire un message au [Défenseur des droits](https://formulaire.defenseurdesdroits.fr/) ;
- contacter [le délégué ou la déléguée du Défenseur des droits dans votre région](\
https://www.defenseurdesdroits.fr/saisir/delegues) ;
- envoyer un courrier, gratuitement, sans mettre de timbre, à : Défenseur des droits, Libre réponse 71120, \
75342 Paris CEDEX 07.
"""

PRIVACY = """\
Cette page explique quelles données personnelles Renfort recueille, pourquoi, combien de temps elles sont \
gardées, qui peut les voir et comment exercer vos droits. Le responsable du traitement est {editeur}.

## Les données recueillies

- À l'inscription comme bénévole : prénom, nom, adresse e-mail, téléphone (facultatif), date de naissance, code \
postal et commune, domaines d'action, disponibilités, compétences, et l'urgence depuis laquelle vous vous êtes \
inscrit·e le cas échéant ; la date de votre accord et la version des conditions d'utilisation acceptée.
- Vos candidatures aux missions et leur suivi (en attente, acceptée, refusée, annulée), ainsi que vos réponses aux \
propositions de mobilisation.
- Pour votre compte : votre adresse e-mail, la date de vos connexions et, si vous en avez, vos rôles (gestion \
d'une structure, référent·e, coordination).
- Pour les structures : les informations de la structure et l'adresse e-mail de ses gestionnaires.

Aucun mot de passe n'est demandé : la connexion se fait par un lien envoyé par e-mail. Aucune donnée n'est vendue \
ni utilisée à des fins publicitaires.

## Pourquoi

- Vous proposer des missions de bénévolat près de chez vous et vous permettre d'y candidater.
- Permettre aux structures de traiter vos candidatures, et aux coordinations de mobiliser des bénévoles lors d'une \
urgence.
- Protéger les mineur·es : la date de naissance sert à ne proposer aux moins de 18 ans que les missions qui leur \
sont ouvertes.
- Assurer la sécurité de la plateforme (limitation des inscriptions automatisées, journal des changements de rôles).

## Base légale

Les données des bénévoles sont traitées avec votre consentement, donné à l'inscription, que vous pouvez retirer à \
tout moment en supprimant votre compte. Les données des structures et des rôles sont traitées pour l'exécution \
d'une mission d'intérêt public : l'organisation du bénévolat et de la réponse aux crises.

## Durée de conservation

- Une inscription dont l'adresse e-mail n'est pas confirmée alors que cela est demandé est supprimée au bout de \
30 jours.
- Un compte sans activité (ni connexion ni candidature) pendant 3 ans est anonymisé : plus rien ne permet de \
vous identifier.
- Un compte supprimé l'est aussitôt, avec ses candidatures ; il ne reste qu'une empreinte non réversible de \
l'adresse, le temps d'écarter une copie de l'inscription encore en attente d'enregistrement.

## Qui voit vos données

- Les structures auxquelles vous candidatez, pour cette candidature seulement : vos coordonnées et les \
informations utiles à la mission.
- Les référent·es de votre département, qui modèrent les structures et les missions.
- Les coordinations (départementale ou nationale) lors d'une urgence, pour vous proposer des missions prioritaires.
- Les administrateurs et administratrices de la plateforme.

Les données sont hébergées par {hebergeur}.

## Vos droits

Vous disposez d'un droit d'accès, de rectification, d'effacement, de limitation et d'opposition, ainsi que du \
droit à la portabilité de vos données.

- Accès et portabilité : « [Télécharger mes données](/mon-espace/donnees) » dans votre espace.
- Rectification : « [Mon profil](/mon-espace/profil) » dans votre espace.
- Effacement : « [Supprimer mon compte](/mon-espace/supprimer) » dans votre espace.
- Pour toute autre demande : [{contact}](mailto:{contact}).

Si vous estimez, après nous avoir contactés, que vos droits ne sont pas respectés, vous pouvez adresser une \
réclamation à la [CNIL](https://www.cnil.fr/fr/plaintes).

## Cookies

Renfort ne dépose qu'un cookie de session, strictement nécessaire, quand vous êtes connecté·e, et un cookie de \
protection des formulaires. Aucun cookie de mesure d'audience ni de publicité : aucun consentement n'est donc \
demandé pour les cookies.
"""

TERMS = """\
Les présentes conditions d'utilisation s'appliquent à toute personne qui utilise Renfort : bénévoles, structures \
et leurs gestionnaires, référent·es et coordinations. En vous inscrivant, vous les acceptez, ainsi que la charte \
qui vous concerne.

## Objet de la plateforme

Renfort met en relation des citoyen·nes qui veulent s'engager bénévolement et des structures (associations, \
collectivités, organismes publics) qui ont besoin de bénévoles, en temps normal comme lors d'une urgence. \
L'inscription et l'utilisation sont gratuites.

## Inscription

- Les bénévoles ont au moins 16 ans et résident en France. Certaines missions ne sont ouvertes qu'aux majeur·es.
- Les informations données doivent être exactes ; chacun peut les corriger dans son espace.
- Un compte est personnel : la connexion se fait par un lien envoyé à votre adresse e-mail, qui ne doit pas être \
transmis.

## Charte des bénévoles

- Je m'engage bénévolement : je ne reçois aucune rémunération pour une mission.
- Je respecte les personnes accompagnées, les autres bénévoles et les équipes de la structure, sans \
discrimination.
- Je respecte les consignes de sécurité de la mission et les règles de la structure qui m'accueille.
- Je préviens la structure au plus tôt si je ne peux pas venir.
- Je garde confidentielles les informations personnelles dont j'ai connaissance pendant la mission.
- Je ne cherche pas à tirer de la mission un avantage personnel, commercial, politique ou religieux.

## Charte des structures

- La structure propose des missions d'intérêt général, à but non lucratif.
- Une mission bénévole ne remplace jamais un emploi salarié ni un stage : elle ne se substitue pas à un poste de \
travail.
- La structure accueille, informe et accompagne les bénévoles, et leur donne les moyens d'agir en sécurité \
(consignes, équipements, assurance).
- La structure n'accueille pas de mineur·es sur les missions qui ne leur sont pas ouvertes, et veille \
particulièrement à la sécurité des mineur·es qu'elle accueille (encadrement par des adultes, accord des \
représentants légaux).
- La structure n'utilise les données des bénévoles que pour la mission à laquelle ils ont candidaté.
- La structure répond aux candidatures dans un délai raisonnable.

## Modération

Les référent·es vérifient les structures et les missions avant leur publication. Une structure ou une mission \
contraire à ces conditions peut être refusée ou suspendue ; un compte qui ne les respecte pas peut être supprimé.

## Responsabilités

Les missions sont organisées sous la responsabilité des structures qui les proposent. L'éditeur de la plateforme \
assure son fonctionnement et la modération, sans garantir qu'une mission aura lieu.

## Évolution des conditions

Ces conditions peuvent évoluer. Chaque version reste consultable. Lorsqu'une modification importante est \
publiée, elle vous est présentée à votre prochaine connexion pour que vous l'acceptiez ; vous pouvez aussi la \
refuser et supprimer votre compte.

## Contact

Pour toute question : [{contact}](mailto:{contact}).
"""

DEFAULTS: dict[Kind, tuple[str, str]] = {
    Kind.MENTIONS: ("Mentions légales", MENTIONS),
    Kind.ACCESSIBILITY: ("Déclaration d'accessibilité", ACCESSIBILITY),
    Kind.PRIVACY: ("Données personnelles", PRIVACY),
    Kind.TERMS: ("Conditions d'utilisation et chartes", TERMS),
}


def substitute(body: str, settings: Settings) -> str:
    """Fills in the words in braces from the settings; any other text is left as it is."""
    values = {
        "{editeur}": settings.legal_publisher,
        "{adresse_editeur}": settings.legal_publisher_address,
        "{directeur}": settings.legal_director,
        "{hebergeur}": settings.legal_host,
        "{adresse_hebergeur}": settings.legal_host_address,
        "{contact}": settings.legal_contact,
    }
    for token, value in values.items():
        body = body.replace(token, value)
    return body


PLACEHOLDERS = ("{editeur}", "{adresse_editeur}", "{directeur}", "{hebergeur}", "{adresse_hebergeur}", "{contact}")
